"""Base model preparation, LoRA/DoRA training, adapter merge and prediction backends."""
