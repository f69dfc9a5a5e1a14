"""segnas: hardware-aware architecture search for real-time segmentation on edge devices."""

__version__ = "0.1.0"
