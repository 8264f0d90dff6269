"""What every check reads and judges alike: a look-up that gave nothing usable, answers not about health."""
