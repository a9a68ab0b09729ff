using System.Text;

namespace RlhfGym.Models.Tests;

/// <summary>
/// A tiny SentencePiece BPE model (sentencepiece_model.proto, written by hand in protobuf's wire format): the
/// &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt; controls, one piece per character, and every prefix of each word, scored so the
/// longest prefix wins each merge.
/// </summary>
internal static class TinySentencePiece
{
    private const int Normal = 1, Unknown = 2, Control = 3;

    public static byte[] Build(string[] words)
    {
        var pieces = new List<(string Piece, float Score, int Type)> { ("<unk>", 0, Unknown), ("<s>", 0, Control), ("</s>", 0, Control) };
        foreach (var c in words.SelectMany(w => w).Distinct()) pieces.Add((c.ToString(), -100, Normal));
        foreach (var w in words)
            for (int n = 2; n <= w.Length; n++) pieces.Add((w[..n], n - 50, Normal));
        var model = new MemoryStream();
        foreach (var (piece, score, type) in pieces)
        {
            var p = new MemoryStream();
            String(p, 1, piece);
            Float(p, 2, score);
            Varint(p, 3, type);
            Message(model, 1, p);
        }
        var trainer = new MemoryStream();
        Varint(trainer, 3, 2);  // model_type BPE
        Varint(trainer, 40, 0); // unk_id
        Varint(trainer, 41, 1); // bos_id
        Varint(trainer, 42, 2); // eos_id
        Message(model, 2, trainer);
        var normalizer = new MemoryStream();
        String(normalizer, 1, "identity");
        Varint(normalizer, 3, 1); // add_dummy_prefix
        Varint(normalizer, 4, 1); // remove_extra_whitespaces
        Varint(normalizer, 5, 1); // escape_whitespaces
        Message(model, 3, normalizer);
        return model.ToArray();
    }

    private static void Raw(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    private static void Varint(Stream s, int field, long value) { Raw(s, (ulong)(field << 3)); Raw(s, (ulong)value); }

    private static void Float(Stream s, int field, float value) { Raw(s, (ulong)(field << 3 | 5)); s.Write(BitConverter.GetBytes(value)); }

    private static void Bytes(Stream s, int field, byte[] bytes) { Raw(s, (ulong)(field << 3 | 2)); Raw(s, (ulong)bytes.Length); s.Write(bytes); }

    private static void String(Stream s, int field, string text) => Bytes(s, field, Encoding.UTF8.GetBytes(text));

    private static void Message(Stream s, int field, MemoryStream message) => Bytes(s, field, message.ToArray());
}
