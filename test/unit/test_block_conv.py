"""``BlockConv`` (evif_ros.learning.layers) computes torch's pixel unshuffle followed by the
same convolution, for the block sizes and kernels the model sizes use, scripted too, and its
parameters keep the names of the ``conv`` it replaced, so earlier checkpoints load."""

import pytest
import torch
import torch.nn.functional as F

from evif_ros.learning.layers import BlockConv, conv


@pytest.mark.parametrize("cin,cout,k,s", [(1, 8, 3, 2), (10, 8, 3, 2), (13, 16, 3, 2),
                                          (11, 32, 5, 1), (2, 4, 3, 4)])
def test_block_conv_is_unshuffle_then_convolution(cin, cout, k, s):
    torch.manual_seed(cin + k)
    block = BlockConv(cin, cout, k, s, act="lrelu").eval()
    reference = conv(cin * s * s, cout, k, act="lrelu").eval()
    assert list(block.state_dict()) == list(reference.state_dict())
    reference.load_state_dict(block.state_dict())
    x = torch.rand(2, cin, 8 * s, 12 * s, dtype=torch.float64)
    block.double()
    reference.double()
    with torch.no_grad():
        expected = reference(F.pixel_unshuffle(x, s))
        torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(torch.jit.script(block)(x), expected, rtol=0, atol=1e-12)
        channels_last = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(block(channels_last), expected, rtol=0, atol=1e-12)
