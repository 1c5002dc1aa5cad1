"""Security: users and roles (OPC UA Part 18), password and certificate authentication, the command role check."""
