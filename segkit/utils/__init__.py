"""The bottom layer: helpers every other part of segkit may use, importing nothing of segkit.

files (atomic writes), images (decoding any image file to RGB), distributed (rank, world
size, collectives), process (allocator settings) and logging.
"""
