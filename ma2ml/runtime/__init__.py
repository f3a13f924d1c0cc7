"""Where evaluations run and how they are kept: the evaluation store and the executors."""
