"""The control-room console: an ordinary OPC UA client of the server (PyQt6 + pyqtgraph)."""
