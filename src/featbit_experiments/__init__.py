"""featbit-experiments: FeatBit OpenFeature provider with a randomization-unit policy."""
