"""The operator's dashboard at ``/``: a password-protected, server-rendered page a trader reads
on a phone (status, signals and their fate, orders, positions, square-off) with the few
buttons that matter (kill switch, square-off, re-login), and Kotak's login page at
``/kotak/callback``. :func:`bridge.dashboard.views.register` attaches it to the app."""
