"""A fleet of hosts on one pipeline through Redis (docs/fleet.md).

Only this layer imports redis, and only when ``[fleet] url`` is set: the watch layer imports
``mwhost.fleet.manifests`` and ``mwhost.fleet.sync`` lazily, so a host without a fleet never
loads redis-py. No Redis call is made on the request path: workers serve from the local data
dir, which one syncer per host keeps a mirror of the fleet's manifest.
"""
