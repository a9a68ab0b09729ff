using System.Runtime.InteropServices;
using RlhfGym.Models.Native;

namespace RlhfGym.Models.Tests;

// Alone: other tests' tensors would move glibc's totals while this one reads them.
[CollectionDefinition(nameof(MallocRetentionTests), DisableParallelization = true)]
public sealed class MallocRetentionCollection;

[Collection(nameof(MallocRetentionTests))]
public class MallocRetentionTests
{
    // glibc's struct mallinfo2: every field a size_t (glibc 2.33 and later; Debian 12 has 2.36).
    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    [DllImport("libc.so.6")]
    private static extern MallInfo2 mallinfo2();

    [Fact]
    public void A_16_MiB_block_comes_from_the_heap_and_its_memory_stays_there_when_freed()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.Equal("applied", MallocRetention.Status);
        const int size = 16 << 20; // the size of a large activation; glibc's default would map it on its own
        var before = mallinfo2();
        var block = Marshal.AllocHGlobal(size); // malloc, as libtorch's CPU allocator
        try
        {
            Marshal.Copy(Enumerable.Repeat((byte)1, size).ToArray(), 0, block, size); // touched, as a tensor is
            var held = mallinfo2();
            Assert.True(held.HBlkHd < before.HBlkHd + (nuint)size, $"the block was mapped on its own: mmapped bytes {before.HBlkHd} → {held.HBlkHd}");
            Assert.True(held.Arena >= size, $"the heap holds {held.Arena} bytes, less than the block");
        }
        finally
        {
            Marshal.FreeHGlobal(block);
        }
        var freed = mallinfo2();
        // Kept for the next tensor rather than trimmed back to the kernel: the heap's free bytes include the block.
        Assert.True(freed.FordBlks >= size, $"only {freed.FordBlks} free bytes kept in the heap after freeing {size}");
    }
}
