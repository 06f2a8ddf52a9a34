"""The shared contracts every part speaks, as leaf modules that import no part of RLCE:

- ``types``: the messages that cross actor boundaries (prompts, samples, training groups);
- ``weights``: what a full weight update looks like, and the shared-memory file it travels in;
- ``models``: where models come from (the default SmolLM2, the tiny test model, any HF folder);
- ``cluster``: starting or joining Ray the same way everywhere.

``actors/`` and ``learner/`` import only these (and ``executors/`` nothing of RLCE at all);
``tests/test_layering.py`` keeps it so."""
