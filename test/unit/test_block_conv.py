"""``BlockConv`` (evif_ros.learning.layers) computes torch's pixel unshuffle followed by the
same convolution, for the block sizes and kernels the model sizes use, scripted too, and its
parameters keep the names of the ``conv`` it replaced, so earlier checkpoints load;
``box_sum3`` against neighbourhood sums by hand; ``block_mean`` against torch's avg_pool2d and
a block mean by hand."""

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


def test_box_sum3_is_the_3x3_neighbourhood_sum_by_hand():
    from evif_ros.learning.layers import box_sum3
    x = torch.zeros(1, 2, 5, 6)
    x[0, 0, 0, 0] = 1.0  # a corner: its neighbourhood is cut by the border
    x[0, 0, 2, 3] = 2.0
    x[0, 1, 4, 5] = 3.0
    s = box_sum3(x)
    assert s.shape == x.shape
    assert s[0, 0, 0, 0] == 1.0 and s[0, 0, 1, 1] == 1.0 and s[0, 0, 2, 2] == 0.0 + 2.0
    assert s[0, 0, 1, 2] == 2.0 and s[0, 0, 3, 4] == 2.0 and s[0, 0, 2, 5] == 0.0
    assert s[0, 1, 3, 4] == 3.0 and s[0, 1, 4, 5] == 3.0 and s[0, 1, 2, 5] == 0.0
    assert float(s.sum()) == 1.0 * 4 + 2.0 * 9 + 3.0 * 4  # each value times its cells


@pytest.mark.parametrize("shape,k", [((1, 5, 272, 352), 2), ((2, 3, 9, 11), 2), ((1, 2, 12, 7), 3),
                                     ((1, 1, 4, 4), 1)])
def test_block_mean_is_avg_pool2d(shape, k):
    """Blocks beyond the last whole one dropped, as avg_pool2d drops them; scripted too."""
    from evif_ros.learning.layers import block_mean
    torch.manual_seed(k)
    x = torch.rand(shape)
    torch.testing.assert_close(block_mean(x, k), F.avg_pool2d(x, k), rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.jit.script(block_mean)(x, k), block_mean(x, k))
    y = torch.arange(16.0).view(1, 1, 4, 4)  # the top-left 2x2 block: 0, 1, 4, 5
    assert float(block_mean(y, 2)[0, 0, 0, 0]) == (0 + 1 + 4 + 5) / 4
