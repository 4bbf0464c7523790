//! Creative-writing benchmarks: Tree-of-Thoughts passages, Trivia CW and DABench loaders.
