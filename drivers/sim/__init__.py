"""The living city: field-device simulators that follow the register maps exactly."""
