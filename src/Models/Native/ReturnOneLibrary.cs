using System.Text;

namespace RlhfGym.Models.Native;

/// <summary>
/// Writes the smallest Linux x86-64 shared object (ELF64, ET_DYN) that exports the named functions, each of which
/// returns the int 1 (<c>mov eax, 1; ret</c>). Loaded with RTLD_GLOBAL before a library that calls one of those names
/// through its PLT, it answers in that library's place: the same symbol interposition LD_PRELOAD gives, without a C
/// compiler on the machine (see <see cref="MklDispatch"/>).
/// </summary>
/// <remarks>
/// Layout: one read+execute page (ELF header, program headers, DT_HASH table, dynamic symbols and strings, code) and one
/// read+write page holding the dynamic section, which the loader adjusts in place. No section headers: the dynamic
/// loader reads program headers only. PT_GNU_STACK says the stack stays non-executable, without which a loader would
/// have to make every thread's stack executable (or, in newer glibc, refuse the library).
/// </remarks>
public static class ReturnOneLibrary
{
    private const int Page = 0x1000;
    private const int ElfHeaderSize = 64, ProgramHeaderSize = 56, SymbolSize = 24, DynamicEntrySize = 16;
    private static readonly byte[] ReturnOne = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3]; // mov eax, 1; ret

    public static byte[] Build(IReadOnlyList<string> functionNames)
    {
        if (functionNames.Count == 0) throw new ArgumentException("at least one function name is needed", nameof(functionNames));
        foreach (var name in functionNames)
            if (string.IsNullOrEmpty(name) || name.Any(c => c is '\0' or > '\x7e' or < '!'))
                throw new ArgumentException($"'{name}' is not a plain ASCII symbol name", nameof(functionNames));

        const int programHeaders = 4;
        int symbols = functionNames.Count + 1; // index 0 is the null symbol every symbol table starts with

        // String table: a leading NUL (the empty name), then each name NUL-terminated.
        var strings = new MemoryStream();
        strings.WriteByte(0);
        var nameOffsets = new int[functionNames.Count];
        for (int i = 0; i < functionNames.Count; i++)
        {
            nameOffsets[i] = (int)strings.Length;
            strings.Write(Encoding.ASCII.GetBytes(functionNames[i]));
            strings.WriteByte(0);
        }

        // Text page offsets. The hash table is 4-byte words; symbols want 8-byte alignment; code 16.
        int hashAt = ElfHeaderSize + programHeaders * ProgramHeaderSize;
        int hashSize = 4 * (2 + 1 + symbols); // nbucket, nchain, one bucket, one chain link per symbol
        int symbolsAt = Align(hashAt + hashSize, 8);
        int stringsAt = symbolsAt + symbols * SymbolSize;
        int codeAt = Align(stringsAt + (int)strings.Length, 16);
        int textEnd = codeAt + functionNames.Count * 16;
        if (textEnd > Page) throw new ArgumentException("too many or too long names for one page", nameof(functionNames));
        int dynamicAt = Page;
        const int dynamicEntries = 6;
        int dynamicSize = dynamicEntries * DynamicEntrySize;

        var image = new byte[dynamicAt + dynamicSize];
        var w = new BinaryWriter(new MemoryStream(image));

        // ELF header.
        w.Write([0x7F, (byte)'E', (byte)'L', (byte)'F', 2 /* 64-bit */, 1 /* little-endian */, 1 /* version */, 0 /* System V ABI */]);
        w.Write(new byte[8]);
        w.Write((ushort)3);              // e_type: ET_DYN
        w.Write((ushort)62);             // e_machine: EM_X86_64
        w.Write(1u);                     // e_version
        w.Write(0ul);                    // e_entry
        w.Write((ulong)ElfHeaderSize);   // e_phoff
        w.Write(0ul);                    // e_shoff: no section headers
        w.Write(0u);                     // e_flags
        w.Write((ushort)ElfHeaderSize);
        w.Write((ushort)ProgramHeaderSize);
        w.Write((ushort)programHeaders);
        w.Write((ushort)64);             // e_shentsize
        w.Write((ushort)0);              // e_shnum
        w.Write((ushort)0);              // e_shstrndx

        // Program headers: text (R+X), data (R+W), dynamic, stack.
        const uint PtLoad = 1, PtDynamic = 2, PtGnuStack = 0x6474E551, Read = 4, Write = 2, Execute = 1;
        ProgramHeader(w, PtLoad, Read | Execute, 0, (ulong)textEnd, Page);
        ProgramHeader(w, PtLoad, Read | Write, (ulong)dynamicAt, (ulong)dynamicSize, Page);
        ProgramHeader(w, PtDynamic, Read | Write, (ulong)dynamicAt, (ulong)dynamicSize, 8);
        ProgramHeader(w, PtGnuStack, Read | Write, 0, 0, 16);

        // DT_HASH with one bucket: the bucket points at the last symbol and each chain link at the one before, so a
        // lookup walks every symbol whatever its hash (there are only a handful).
        w.Seek(hashAt, SeekOrigin.Begin);
        w.Write(1u);
        w.Write((uint)symbols);
        w.Write((uint)(symbols - 1));
        w.Write(0u);
        for (int i = 1; i < symbols; i++) w.Write((uint)(i - 1));

        // Dynamic symbols: the null symbol, then each name as a global function at its code.
        w.Seek(symbolsAt, SeekOrigin.Begin);
        w.Write(new byte[SymbolSize]);
        for (int i = 0; i < functionNames.Count; i++)
        {
            w.Write((uint)nameOffsets[i]);           // st_name
            w.Write((byte)((1 << 4) | 2));           // st_info: STB_GLOBAL, STT_FUNC
            w.Write((byte)0);                        // st_other: default visibility
            w.Write((ushort)1);                      // st_shndx: any defined index (the loader only checks "not undefined")
            w.Write((ulong)(codeAt + 16 * i));       // st_value
            w.Write((ulong)ReturnOne.Length);        // st_size
        }
        w.Write(strings.ToArray());

        w.Seek(codeAt, SeekOrigin.Begin);
        for (int i = 0; i < functionNames.Count; i++)
        {
            w.Write(ReturnOne);
            w.Write(new byte[16 - ReturnOne.Length]);
        }

        // Dynamic section: addresses are virtual addresses; the loader adds the load base in place.
        const long DtNull = 0, DtHash = 4, DtStrtab = 5, DtSymtab = 6, DtStrsz = 10, DtSyment = 11;
        w.Seek(dynamicAt, SeekOrigin.Begin);
        foreach (var (tag, value) in new (long, long)[]
                 {
                     (DtHash, hashAt), (DtStrtab, stringsAt), (DtSymtab, symbolsAt), (DtStrsz, strings.Length),
                     (DtSyment, SymbolSize), (DtNull, 0),
                 })
        {
            w.Write(tag);
            w.Write(value);
        }
        w.Flush();
        return image;
    }

    private static void ProgramHeader(BinaryWriter w, uint type, uint flags, ulong offset, ulong size, ulong align)
    {
        w.Write(type);
        w.Write(flags);
        w.Write(offset);  // p_offset
        w.Write(offset);  // p_vaddr: the file is mapped at its own offsets
        w.Write(offset);  // p_paddr
        w.Write(size);    // p_filesz
        w.Write(size);    // p_memsz
        w.Write(align);
    }

    private static int Align(int value, int alignment) => (value + alignment - 1) / alignment * alignment;
}
