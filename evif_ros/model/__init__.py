"""The EVIF networks (reconstruction, deblurring, fusion), losses, training and export."""
