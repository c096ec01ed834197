"""What a unit process is doing, as it writes it into the shared status array.

The launcher reads these to name a hung unit; the test faults read them to hold a
message until its receiver waits. A value >= 0 is the unit the process waits on.
"""

BUSY = -1
IN_BARRIER = -2
FINISHED = -3
SETTING_UP = -4  # importing torch, compiling, joining the group: may take long on a busy host
