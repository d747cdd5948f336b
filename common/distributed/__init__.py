"""The replay family's runtime: how actors, one learner and a replay are spread over processes.

Ape-X and R2D2 (and the algorithms to come on the same machinery) supply their actor, learner and
replay; this package supplies the rest: the actor process's loop (`actor_loop`), the learner's share
of the owner loop in parallel or serial mode (`learner_loop`), and the two seams (`seams`) through
which actors and learner reach the replay and the parameters. The shared-memory implementations
behind the seams are `common.replay` and `params.PublishedParams`.

Gorila's bundled mode is the same runtime's other layout: bundle processes that act and compute
gradients on their own replays (`bundle`), gradients sent through shared slots and dropped when stale
(`gradients`), and a parameter server in the owner's place of the learner (`param_server`).
"""
