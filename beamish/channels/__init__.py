"""Phoenix Channels protocol over WebSockets: the socket and conversation channel actors.

Home of the sans-I/O frame codec and channel state machine, and the thin WebSocket adapter
that the official ``phoenix`` JavaScript client talks to unmodified.
"""
