"""`twooter cluster`: the several-machines topology started, inspected and broken on one machine.

layout.py    names, ports and folders of every component, from --dir and --base-port
render.py    the deploy/ templates filled in (the same files real machines use)
components.py what each kind of component is: its configuration, command and readiness
processes.py starting, finding and stopping processes by id, and the state file
patroni.py / haproxy.py  the engines' own control interfaces (REST API, runtime socket)
operations.py up, status, kill, stop, start, switchover, restart-apps, down
commands.py  the click group registered in twooter.cli
netns.py     network namespaces standing in for machines: a bridge, edges, a client (--edge-ha)
vip.py       two HAProxy edges sharing a virtual address through keepalived (--edge-ha)

Nothing in the app depends on this package.
"""
