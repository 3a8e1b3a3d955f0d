"""An endpoint's CloudWatch logs: read (all streams merged in time order), follow, fold.

- lines.py   one log event as the library hands it on, and the endpoint's log group name
- since.py   "10m" / "2h" / "1d" into a start time
- read.py    FilterLogEvents over every stream of a group, paginated, merged by time
- follow.py  new lines as they arrive: StartLiveTail where the service streams, else polling
- fold.py    health-check runs into one line, a traceback into one block
"""
