// TorchSharp's module initialisers draw from one process-wide generator, and many tests seed it and then build a
// model; test classes running side by side would interleave those draws and make seeded results flaky. Torch already
// uses every core inside each operation, so running test classes one at a time costs little.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
