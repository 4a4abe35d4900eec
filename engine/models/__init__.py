"""GAN and VAE families: networks, the offline prompt encoder, and safetensors I/O."""
