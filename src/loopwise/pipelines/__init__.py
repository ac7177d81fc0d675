"""Pipelines: plain-Python steps wired into a graph, each step run recorded as a child run,
cached by the content of its code, parameters and inputs, and run in-process, in local
processes or on Ray.
"""
