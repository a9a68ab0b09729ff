using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.Tests;

public class TransformerTests
{
    public static TheoryData<int, MlpKind, NormKind, bool, bool, DecodeAttention> Variants
    {
        get
        {
            var data = new TheoryData<int, MlpKind, NormKind, bool, bool, DecodeAttention>();
            foreach (var kernel in Enum.GetValues<DecodeAttention>())
            {
                data.Add(4, MlpKind.SwiGlu, NormKind.RmsNorm, true, false, kernel);
                data.Add(2, MlpKind.SwiGlu, NormKind.RmsNorm, false, false, kernel); // grouped-query attention, untied head
                data.Add(1, MlpKind.Gelu, NormKind.LayerNorm, true, true, kernel);   // multi-query, GPT-2 style
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Incremental_decode_matches_full_forward_for_rows_of_unequal_length(int kv, MlpKind mlp, NormKind norm, bool tied, bool bias,
        DecodeAttention kernel)
    {
        using var model = TinyModels.Create(TinyModels.Config(kv, mlp, norm, tied, bias));
        model.DecodeAttention = kernel;
        using var _ = no_grad();
        long[] promptLengths = [3, 7, 5];
        const int newTokens = 10, width = 7;
        random.manual_seed(7);
        var all = randint(0, 50, [3, width + newTokens], ScalarType.Int64); // row b: prompt then continuation
        // Right-pad prompts to the longest one; the continuation of row b starts at its own length.
        var prompts = all.narrow(1, 0, width).clone();
        using var cache = model.NewCache(3, 32);
        var prefill = model.Logits(model.Prefill(prompts, promptLengths, cache));
        var stepped = new List<Tensor>();
        for (int s = 0; s < newTokens; s++)
        {
            var next = stack(Enumerable.Range(0, 3).Select(b => all[b, promptLengths[b] + s]).ToArray());
            stepped.Add(model.Logits(model.DecodeStep(next, cache)));
        }
        for (int b = 0; b < 3; b++)
        {
            long total = promptLengths[b] + newTokens;
            var full = model.Logits(model.Forward(all[b].narrow(0, 0, total).unsqueeze(0)))[0];
            // Prefill positions of the real prompt.
            double prefillDiff = (prefill[b].narrow(0, 0, promptLengths[b]) - full.narrow(0, 0, promptLengths[b])).abs().max().item<float>();
            Assert.True(prefillDiff <= 1e-4, $"row {b}: prefill max abs diff {prefillDiff}");
            for (int s = 0; s < newTokens; s++)
            {
                double diff = (stepped[s][b] - full[promptLengths[b] + s]).abs().max().item<float>();
                Assert.True(diff <= 1e-4, $"row {b} step {s}: max abs diff {diff}");
            }
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(2)]
    [InlineData(1)]
    public void Every_attention_kernel_decodes_the_same_logits_within_1e_5(int kvHeads)
    {
        using var model = TinyModels.Create(TinyModels.Config(kvHeads, MlpKind.SwiGlu, NormKind.RmsNorm, true, false));
        using var _ = no_grad();
        random.manual_seed(11);
        var tokens = randint(0, 50, [4, 20], ScalarType.Int64);
        long[] lengths = [2, 6, 4, 6];
        Tensor Decode(DecodeAttention kernel)
        {
            model.DecodeAttention = kernel;
            using var cache = model.NewCache(4, 32);
            model.Prefill(tokens.narrow(1, 0, 6), lengths, cache);
            // A kernel switch between steps must also work: both masks are kept current.
            var steps = Enumerable.Range(0, 14).Select(s =>
            {
                if (s == 7) model.DecodeAttention = kernel == DecodeAttention.Sdpa ? DecodeAttention.Reduce : DecodeAttention.Sdpa;
                return model.Logits(model.DecodeStep(tokens.select(1, 6 + s), cache));
            }).ToArray();
            return stack(steps);
        }
        var reference = Decode(DecodeAttention.Sdpa);
        foreach (var kernel in new[] { DecodeAttention.Matmul, DecodeAttention.Reduce, DecodeAttention.Auto })
        {
            double diff = (Decode(kernel) - reference).abs().max().item<float>();
            Assert.True(diff <= 1e-5, $"{kernel} vs sdpa: max abs diff {diff}");
        }
    }

    [Theory]
    [InlineData("auto", DecodeAttention.Auto)]
    [InlineData(" Matmul ", DecodeAttention.Matmul)]
    [InlineData("SDPA", DecodeAttention.Sdpa)]
    [InlineData("reduce", DecodeAttention.Reduce)]
    public void Attention_kernel_names_parse(string name, DecodeAttention expected) =>
        Assert.Equal(expected, DecodeAttentionKernels.Parse(name));

    [Fact]
    public void An_unknown_attention_kernel_is_an_error_naming_the_option_and_the_choices()
    {
        var ex = Assert.Throws<ArgumentException>(() => DecodeAttentionKernels.Parse("flash", "--kernels"));
        Assert.Contains("--kernels", ex.Message);
        Assert.Contains("'flash'", ex.Message);
        Assert.Contains("matmul", ex.Message);
    }

    [Fact]
    public void Padded_batch_forward_matches_each_row_alone()
    {
        using var model = TinyModels.Create(TinyModels.Config());
        using var _ = no_grad();
        random.manual_seed(3);
        var tokens = randint(0, 50, [2, 9], ScalarType.Int64);
        long[] lengths = [4, 9];
        var batch = model.Logits(model.Forward(tokens, lengths));
        var alone = model.Logits(model.Forward(tokens[0].narrow(0, 0, 4).unsqueeze(0)))[0];
        Assert.True((batch[0].narrow(0, 0, 4) - alone).abs().max().item<float>() <= 1e-5);
    }

    [Fact]
    public void Decode_past_cache_capacity_is_a_clear_error()
    {
        using var model = TinyModels.Create(TinyModels.Config());
        using var _ = no_grad();
        using var cache = model.NewCache(1, 4);
        model.Prefill(tensor(new long[] { 1, 2, 3, 4 }).unsqueeze(0), [4], cache);
        var ex = Assert.Throws<InvalidOperationException>(() => model.DecodeStep(tensor(new long[] { 5 }), cache));
        Assert.Contains("KV cache is full", ex.Message);
    }

    [Fact]
    public void Config_validation_names_the_field()
    {
        var ex = Assert.Throws<ArgumentException>(() => (TinyModels.Config() with { NKvHeads = 3 }).Validate());
        Assert.Contains("n_kv_heads", ex.Message);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Stepping_some_rows_computes_them_as_the_full_forward_and_leaves_the_others_as_they_were(int kv, MlpKind mlp,
        NormKind norm, bool tied, bool bias, DecodeAttention kernel)
    {
        // The multi-query variant (GPT-2 style) also takes learned positions, gathered for the stepping rows only.
        var config = TinyModels.Config(kv, mlp, norm, tied, bias) with { Positions = kv == 1 ? PositionKind.Learned : PositionKind.Rotary };
        using var model = TinyModels.Create(config);
        model.DecodeAttention = kernel;
        using var _ = no_grad();
        long[] promptLengths = [3, 6, 4, 5];
        random.manual_seed(11);
        var all = randint(0, 50, [4, 30], ScalarType.Int64); // row b: prompt, then the tokens it is fed, in order
        using var cache = model.NewCache(4, 32);
        model.Prefill(all.narrow(1, 0, 6).clone(), promptLengths, cache);
        using var tail = cache.RowRange(1, 3); // a span of the pool, as a shared decoder steps it
        using var whole = new RowMask(4, CPU);
        using var spanned = new RowMask(3, CPU);
        var fed = new long[4];
        for (int s = 0; s < 12; s++)
        {
            // Ever other rows step: some through the whole cache, some through the span of rows 1..3, one row alone,
            // and once every row under a mask that leaves none out.
            bool throughSpan = s % 3 == 2;
            int offset = throughSpan ? 1 : 0;
            var stepping = Enumerable.Range(offset, 4 - offset).Where(b => (s + b) % 3 != 0 || s == 6).ToArray();
            if (s == 7) stepping = [3];
            var mask = throughSpan ? spanned : whole;
            mask.Update(Enumerable.Range(offset, 4 - offset).Select(stepping.Contains).ToArray());
            // Rows outside the mask get a token that must not be read.
            var tokens = tensor(Enumerable.Range(offset, 4 - offset)
                .Select(b => stepping.Contains(b) ? all[b, promptLengths[b] + fed[b]].item<long>() : 49L).ToArray());
            var logits = model.Logits(model.DecodeStep(tokens, throughSpan ? tail : cache, mask));
            Assert.Equal(stepping.Length, logits.shape[0]);
            for (int i = 0; i < stepping.Length; i++)
            {
                int b = stepping[i];
                fed[b]++;
                long length = promptLengths[b] + fed[b];
                var full = model.Logits(model.Forward(all[b].narrow(0, 0, length).unsqueeze(0)))[0, length - 1];
                double diff = (logits[i] - full).abs().max().item<float>();
                Assert.True(diff <= 1e-4, $"step {s}, row {b} (fed {fed[b]}): max abs diff {diff}");
            }
            Assert.Equal(promptLengths.Select((p, b) => p + fed[b]).ToArray(), cache.Lengths.ToArray());
        }
        Assert.All(fed, f => Assert.True(f >= 3, $"every row must step several times ({string.Join(", ", fed)})"));
        // Then every row steps without a mask: nothing the masked steps did to a row they left out may show here.
        var last = model.Logits(model.DecodeStep(tensor(Enumerable.Range(0, 4).Select(b => all[b, promptLengths[b] + fed[b]].item<long>()).ToArray()), cache));
        for (int b = 0; b < 4; b++)
        {
            long length = promptLengths[b] + fed[b] + 1;
            var full = model.Logits(model.Forward(all[b].narrow(0, 0, length).unsqueeze(0)))[0, length - 1];
            double diff = (last[b] - full).abs().max().item<float>();
            Assert.True(diff <= 1e-4, $"the unmasked step after, row {b}: max abs diff {diff}");
        }
    }

    [Fact]
    public void Scalar_head_has_the_documented_init_scale()
    {
        random.manual_seed(0);
        using var head = new ScalarHead(255);
        double std = head.score.weight!.std().item<float>();
        Assert.InRange(std, 0.5 / 256, 1.5 / 256);
        using var hidden = randn(2, 5, 255);
        Assert.Equal([2L, 5L], head.forward(hidden).shape);
    }

    [Fact]
    public void Prefilling_some_rows_again_leaves_the_others_untouched()
    {
        using var model = TinyModels.Create(TinyModels.Config(nKvHeads: 2));
        using var _ = no_grad();
        random.manual_seed(8);
        var seq = randint(0, 50, [3, 20], ScalarType.Int64);
        using var cache = model.NewCache(3, 40);
        model.Prefill(seq.narrow(1, 0, 4), [4, 4, 4], cache);
        for (int s = 4; s < 8; s++) model.DecodeStep(seq.select(1, s), cache);
        // Row 1 starts a new episode: prompt = seq[1, 10..13) (3 tokens); rows 0 and 2 carry on.
        var newPrompt = seq[1].narrow(0, 10, 3).unsqueeze(0);
        model.PrefillRows(newPrompt, [3], cache, [1]);
        Assert.Equal([8L, 3L, 8L], cache.Lengths.ToArray());
        var next = stack([seq[0, 8], seq[1, 13], seq[2, 8]]);
        var logits = model.Logits(model.DecodeStep(next, cache));
        var full0 = model.Logits(model.Forward(seq[0].narrow(0, 0, 9).unsqueeze(0)))[0, 8];
        var full1 = model.Logits(model.Forward(seq[1].narrow(0, 10, 4).unsqueeze(0)))[0, 3];
        Assert.True((logits[0] - full0).abs().max().item<float>() <= 1e-4);
        Assert.True((logits[1] - full1).abs().max().item<float>() <= 1e-4);
    }

    [Fact]
    public void A_cache_made_inside_a_dispose_scope_outlives_it()
    {
        using var model = TinyModels.Create(TinyModels.Config());
        using var _ = no_grad();
        KvCache cache;
        using (NewDisposeScope()) cache = model.NewCache(1, 8);
        using (cache)
        {
            model.Prefill(tensor(new long[] { 1, 2 }).unsqueeze(0), [2], cache);
            Assert.Equal(50, model.Logits(model.DecodeStep(tensor(new long[] { 3 }), cache)).shape[1]);
        }
    }
}
