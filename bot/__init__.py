"""minpcode's core: the service, its ports, the shared types, the upstream client and the process files."""
