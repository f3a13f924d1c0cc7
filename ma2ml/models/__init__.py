"""Networks (NASNet cells, FBNet blocks), their FLOPs, and the batched augmentation ops."""
