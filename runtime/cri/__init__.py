"""The Kubernetes CRI v1 plugin: pods, containers and images for a kubelet, on the runtime's own services."""
