"""The brain (大脑): governed indicators, targets and lights, forecasts, warnings, goals."""
