using RlhfGym.Env.Segmentation;

namespace RlhfGym.Env.Tests;

public class EntropySegmenterTests
{
    [Fact]
    public void Token_j_ends_a_segment_iff_its_entropy_is_strictly_above_the_threshold()
    {
        // Response of 6 content tokens + EOS; entropy[j] predicts token j+1.
        float[] h = [0.1f, 2.5f, 2.0f, 0.3f, 3.0f, 9f, 0f];
        var segments = EntropySegmenter.Segment(h, 6, 2.0);
        Assert.Equal([new Segment(0, 1), new Segment(2, 4), new Segment(5, 5)], segments);
    }

    [Fact]
    public void Last_segment_ends_at_the_last_content_token_whatever_the_entropy()
    {
        float[] h = [0f, 0f, 0f, 0f];
        Assert.Equal([new Segment(0, 3)], EntropySegmenter.Segment(h, 4, 1.0));
    }

    [Fact]
    public void Token_mode_bandit_mode_and_eos_only()
    {
        float[] h = [0.5f, 0.0001f, 0.2f, 5f];
        Assert.Equal(4, EntropySegmenter.Segment(h, 4, 0).Count);          // every content token its own segment
        Assert.Single(EntropySegmenter.Segment(h, 4, double.PositiveInfinity));
        Assert.Empty(EntropySegmenter.Segment([], 0, 2.0));                 // the response was only EOS
        Assert.Throws<ArgumentOutOfRangeException>(() => EntropySegmenter.Segment(h, 4, -1));
    }
}
