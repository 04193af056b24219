"""QONNX step-graph export and verification, FINN estimate builds."""
