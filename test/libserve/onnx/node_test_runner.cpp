// Placeholder: the ONNX backend node-test runner is being written.
int main() { return 0; }
