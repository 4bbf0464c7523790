//! MMLU machine-learning benchmark: loader, seeded split, letter extraction.
