using RlhfGym.Models.Tokenization;

namespace RlhfGym.Models.Tests;

public class WordTokenizerTests
{
    [Fact]
    public void Encode_decode_round_trip_and_unknown_words()
    {
        var tok = new WordTokenizer(["<user>", "<assistant>"], ["cats", "are", "nice"]);
        Assert.Equal(8, tok.VocabSize);
        Assert.Equal(2, tok.EosId);
        int[] ids = tok.Encode("<user> cats are  nice <eos>");
        Assert.Equal("<user> cats are nice <eos>", tok.Decode(ids));
        Assert.Equal(tok.UnkId, tok.Encode("dogs")[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.TokenText(99));
    }

    [Fact]
    public void Save_and_load_round_trip_and_bad_files_are_named()
    {
        using var dir = new TempDir();
        var tok = new WordTokenizer(["<user>"], ["a", "b"]);
        string path = dir.File("tokenizer.json");
        tok.Save(path);
        Assert.Equal(tok.Tokens, WordTokenizer.Load(path).Tokens);
        File.WriteAllText(path, """{"type":"bpe","version":1,"special":[],"tokens":[]}""");
        Assert.Contains("'type'", Assert.Throws<InvalidDataException>(() => WordTokenizer.Load(path)).Message);
        File.WriteAllText(path, """{"type":"word","version":9,"special":[],"tokens":[]}""");
        Assert.Contains("'version'", Assert.Throws<InvalidDataException>(() => WordTokenizer.Load(path)).Message);
        File.WriteAllText(path, """{"type":"word","version":"1","special":[],"tokens":[]}""");
        Assert.Contains("field 'version' must be", Assert.Throws<InvalidDataException>(() => WordTokenizer.Load(path)).Message);
        File.WriteAllText(path, """{"type":"word","version":1,"special":[],"tokens":["<pad>", 7]}""");
        Assert.Contains("'tokens'[1] must be a non-empty string", Assert.Throws<InvalidDataException>(() => WordTokenizer.Load(path)).Message);
        Assert.Throws<FileNotFoundException>(() => WordTokenizer.Load(dir.File("nope.json")));
    }
}
