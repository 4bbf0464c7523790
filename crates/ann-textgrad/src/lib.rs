//! Textual backpropagation: loss, global and local gradients, momentum, patches, validation gate.
