"""Steelyard's statistics core: truth inference, consensus, agreement, adaptive redundancy.

Pure numpy/scipy (and shapely for polygons); imports nothing else of Steelyard's.
"""
