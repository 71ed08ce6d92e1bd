# Sensor and actuator drivers; each is handed its bus or pin objects by the board module.
