"""Live refinement as a Ray Serve application: JSON (:mod:`hanet.live.api`), the streams a
replica holds (:mod:`hanet.live.streams`), sticky routing by stream id
(:mod:`hanet.live.router`) and the deployment itself (:mod:`hanet.live.service`)."""
