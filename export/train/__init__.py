"""Step 3 of the workshop, checkpoints: `lm` trains the language model on the corpus and tokenizer of
step 1, `gan` trains a GAN on an image set, and `from_gguf` makes a language-model checkpoint from
pretrained GGUF weights instead of training. Every checkpoint stores its own model configuration, so the
export step rebuilds the model from the file alone.
"""
