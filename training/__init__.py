"""Offline training: turns the MNIST and Auto MPG data sets into versioned SavedModels."""
