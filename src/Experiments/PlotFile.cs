using RlhfGym.Models.Checkpoints;

namespace RlhfGym.Experiments;

/// <summary>Figures are written like every other output: to a temp file renamed into place, so an interrupted run
/// never leaves a half-written PNG under its final name.</summary>
public static class PlotFile
{
    public static void SavePng(ScottPlot.Plot plot, string path, int width, int height)
    {
        byte[] png = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(png));
    }
}
