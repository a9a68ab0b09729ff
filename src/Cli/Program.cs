using TorchSharp;
using static TorchSharp.torch;
void Show(Type t, params string[] names) { foreach (var m in t.GetMembers().Where(m => names.Contains(m.Name))) Console.WriteLine($"{t.Name}: {m}"); }
Show(typeof(Tensor), "bytes", "view", "scatter_", "index_copy_", "masked_fill_", "to_type", "data", "copy_", "index_put_", "type");
Show(typeof(torch), "frombuffer", "tensor", "Generator", "empty", "full", "where", "arange");
Show(typeof(torch.nn.Module), "RegisterComponents", "register_module", "register_buffer", "named_parameters", "state_dict", "load_state_dict", "to", "train", "eval");
Show(typeof(torch.nn.init), "normal_");
Show(typeof(torch.Generator), ".ctor", "manual_seed");
Show(typeof(torch.cuda), "is_available", "device_count");
