//! The embedded offline model (SmolLM2 GGUF through candle) behind ChatModel.
