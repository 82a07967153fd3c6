"""The pipeline runtime: intake (emit, request), the stages bound to their resources, the
pipeline that runs them on a bus, and the gateway's spool."""
