"""Multi-agent learners (MA2ML, MA2ML-Lite, MA2ML on-policy) and the learner registry."""
