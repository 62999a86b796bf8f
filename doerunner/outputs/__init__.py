"""What srd writes — the output-format family (``outputs.base``): each format turns data into
text or bytes on a stream, and one writer (``base.write_output``) does the atomic file I/O
and the error translation. The registry of formats by name is ``outputs.registry``."""
