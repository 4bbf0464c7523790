//! HumanEval benchmark: loader, rendering and the sandboxed Python executor.
