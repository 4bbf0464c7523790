//! Agents, layers, aggregators, the network definition, the forward pass and its trace.
