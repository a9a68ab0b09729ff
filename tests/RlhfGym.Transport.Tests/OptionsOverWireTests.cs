using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Options;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Tests;

/// <summary>"make" options reach the env through the options codec: what the spec reports is what was asked, and a
/// value the codec refuses is invalid_argument naming the key.</summary>
public class OptionsOverWireTests
{
    [Fact]
    public async Task Every_option_given_to_make_is_in_the_spec()
    {
        await using var server = await TestServer.Start();
        var defaults = EnvBundle.Load(TestServer.Bundle.Value).Defaults;
        // Three sessions: a segment reading (with c_ent) and every other option but length_norm, which refuses their
        // dense_as_bandit and online delivery; a token reading (which has no c_ent); and a token reading with length_norm.
        var asked = EnvOptionTable.All.Where(o => o.Key is not ("mode" or "length_norm")).ToDictionary(o => o.Key, OptionValues.NonDefault);
        var token = new Dictionary<string, string> { ["mode"] = "token" };
        foreach (var options in new[] { asked, token, new Dictionary<string, string>(token) { ["length_norm"] = "true" } })
        {
            using var remote = new RemoteVectorEnv(server.Address, numEnvs: 1, options: options);
            var spec = EnvOptionsCodec.Encode(remote.Spec.Options);
            foreach (var (key, value) in options) Assert.Equal(value, spec[key]);
            Assert.Equal(EnvOptionsCodec.Decode(options, defaults), remote.Spec.Options);
            Assert.Equal(remote.Spec.Options.MaxNewTokens, remote.Spec.MaxNewTokens);
        }
    }

    [Theory]
    [InlineData("True")]
    [InlineData("true")]
    [InlineData("TRUE")]
    public async Task Dense_as_bandit_true_in_any_case_takes_effect(string value)
    {
        await using var server = await TestServer.Start();
        using var remote = new RemoteVectorEnv(server.Address, numEnvs: 1, options: new Dictionary<string, string> { ["dense_as_bandit"] = value });
        Assert.True(remote.Spec.Options.DenseAsBandit);
    }

    [Theory]
    [InlineData("dense_as_bandit", "yes")]
    [InlineData("dense_as_bandit", "1")]
    [InlineData("dense_as_bandit", "banana")]
    [InlineData("max_new_tokens", "12.5")]
    [InlineData("c_ent", "2,5")]
    [InlineData("denseasbandit", "true")]
    public async Task A_refused_value_is_invalid_argument_naming_the_key(string key, string value)
    {
        await using var server = await TestServer.Start();
        var e = Assert.Throws<RemoteEnvException>(() => new RemoteVectorEnv(server.Address, numEnvs: 1, options: new Dictionary<string, string> { [key] = value }));
        Assert.Equal(ErrorCodes.InvalidArgument, e.Code);
        Assert.Contains($"'{key}'", e.Message);
        Assert.Contains(EnvOptionTable.Find(key) is null ? "unknown option" : $"got '{value}'", e.Message);
    }

    [Fact]
    public void The_python_client_writes_values_the_codec_reads()
    {
        // Import the client with stand-ins for pyzmq and msgpack where they are missing: only option_text runs.
        string script = $$"""
            import importlib, json, sys, types
            for name in ("zmq", "msgpack"):
                try:
                    importlib.import_module(name)
                except ImportError:
                    zmq = types.ModuleType(name); utils = types.ModuleType(name + ".utils"); z85 = types.ModuleType(name + ".utils.z85")
                    zmq.utils, utils.z85 = utils, z85
                    sys.modules.update({name: zmq, name + ".utils": utils, name + ".utils.z85": z85})
            sys.path.insert(0, {{JsonValue.Create(PythonClient.ClientDir).ToJsonString()}})
            from rlhfgym_client import option_text
            import numpy as np
            class Float64(float):  # numpy >= 2's repr of a numpy float: "np.float64(0.25)"
                def __repr__(self):
                    return f"np.float64({float.__repr__(self)})"
            print(json.dumps({"dense_as_bandit": option_text(True), "c_ent": option_text(1e-05), "missing_eos_penalty": option_text(0.1),
                              "max_new_tokens": option_text(48), "mode": option_text("segment"),
                              "numpy": {"dense_as_bandit": option_text(np.bool_(True)), "c_ent": option_text(Float64(0.25)),
                                        "missing_eos_penalty": option_text(np.float32(0.5)), "max_new_tokens": option_text(np.int64(7)) } }))
            """;
        var (ok, stdout, stderr) = PythonClient.Run("-c", script);
        Assert.True(ok, stderr);
        var json = JsonNode.Parse(stdout.Trim())!.AsObject();
        var sent = json.Where(kv => kv.Key != "numpy").ToDictionary(kv => kv.Key, kv => (string)kv.Value!);
        Assert.Equal("true", sent["dense_as_bandit"]);
        var o = EnvOptionsCodec.Decode(sent, new EnvOptions());
        Assert.True(o.DenseAsBandit);
        Assert.Equal(1e-05, o.Reading.CEnt);
        Assert.Equal(0.1, o.MissingEosPenalty);
        Assert.Equal(48, o.MaxNewTokens);
        // numpy scalars (a bool_, a float whose repr is numpy 2's, a float32, an int64) go as plain Python values.
        var numpy = json["numpy"]!.AsObject().ToDictionary(kv => kv.Key, kv => (string)kv.Value!);
        Assert.Equal("0.25", numpy["c_ent"]);
        var n = EnvOptionsCodec.Decode(numpy, new EnvOptions());
        Assert.True(n.DenseAsBandit);
        Assert.Equal(0.25, n.Reading.CEnt);
        Assert.Equal(0.5, n.MissingEosPenalty);
        Assert.Equal(7, n.MaxNewTokens);
    }
}
