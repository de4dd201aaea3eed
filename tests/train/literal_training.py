"""A literal transcription of the released training losses: the oracle for sanet.models.losses.

SANet: the circulated reproduction's net.py forward (encode_with_intermediate, calc_content_loss with norm on relu4_1
and relu5_1, calc_style_loss on relu1_1..relu5_1, Icc / Iss and the two identity losses), on tests/oracle.py's literal
attention. AdaAttN: the released adaattn_model.py forward + compute_losses (content on relu2_1..relu5_1 normalised,
global mean/std, local loss against a parameter-free AdaAttN with the released std = sqrt(relu(A·v² − mean²)) and
the global-seed key subsampling, here inside fork_rng), on tests/oracle_adaattn.py. Nothing is shared with the
engine except the nn.Module containers holding the weights.
"""
from __future__ import annotations

import torch

from oracle import Oracle, calc_mean_std, mean_variance_norm
from oracle_adaattn import SEED, AdaAttnOracle, get_key

mse_loss = torch.nn.MSELoss()


def calc_content_loss(input, target, norm=False):
    if not norm:
        return mse_loss(input, target)
    return mse_loss(mean_variance_norm(input), mean_variance_norm(target))


def calc_style_loss(input, target):
    input_mean, input_std = calc_mean_std(input)
    target_mean, target_std = calc_mean_std(target)
    return mse_loss(input_mean, target_mean) + mse_loss(input_std, target_std)


class SanetTrainingOracle(Oracle):
    """SANet's training forward as released; the modules are trainable (not under no_grad)."""

    def losses(self, content, style):
        style_feats = self.encode(style)
        content_feats = self.encode(content)
        stylized = self.transform_features(content_feats[3], content_feats[4], style_feats[3], style_feats[4])
        g_t = self.decoder(stylized)
        g_t_feats = self.encode(g_t)
        loss_c = calc_content_loss(g_t_feats[3], content_feats[3], norm=True) + \
            calc_content_loss(g_t_feats[4], content_feats[4], norm=True)
        loss_s = calc_style_loss(g_t_feats[0], style_feats[0])
        for i in range(1, 5):
            loss_s = loss_s + calc_style_loss(g_t_feats[i], style_feats[i])
        Icc = self.decoder(self.transform_features(content_feats[3], content_feats[4], content_feats[3],
                                                   content_feats[4]))
        Iss = self.decoder(self.transform_features(style_feats[3], style_feats[4], style_feats[3], style_feats[4]))
        l_identity1 = calc_content_loss(Icc, content) + calc_content_loss(Iss, style)
        Fcc = self.encode(Icc)
        Fss = self.encode(Iss)
        l_identity2 = calc_content_loss(Fcc[0], content_feats[0]) + calc_content_loss(Fss[0], style_feats[0])
        for i in range(1, 5):
            l_identity2 = l_identity2 + calc_content_loss(Fcc[i], content_feats[i]) + \
                calc_content_loss(Fss[i], style_feats[i])
        return {"content": loss_c, "style": loss_s, "identity_pixel": l_identity1, "identity_feature": l_identity2}, g_t


class AdaAttnTrainingOracle(AdaAttnOracle):
    """AdaAttN's training forward and compute_losses as released (max_sample 64·64 for the local loss)."""
    local_max_sample = 64 * 64

    def local_target(self, c_feats, s_feats, i):
        c_key = get_key(c_feats, i)
        s_key = get_key(s_feats, i)
        s_value = s_feats[i]
        b, _, h_s, w_s = s_key.size()
        s_key = s_key.view(b, -1, h_s * w_s).contiguous()
        if h_s * w_s > self.local_max_sample:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(SEED)
                index = torch.randperm(h_s * w_s).to(c_key.device)[:self.local_max_sample]
            s_key = s_key[..., index]
            style_flat = s_value.view(b, -1, h_s * w_s)[..., index].transpose(1, 2).contiguous()
        else:
            style_flat = s_value.view(b, -1, h_s * w_s).transpose(1, 2).contiguous()
        b, _, h_c, w_c = c_key.size()
        c_key = c_key.view(b, -1, h_c * w_c).permute(0, 2, 1).contiguous()
        attn = torch.softmax(torch.bmm(c_key, s_key), dim=-1)
        mean = torch.bmm(attn, style_flat)
        std = torch.sqrt(torch.relu(torch.bmm(attn, style_flat ** 2) - mean ** 2))
        mean = mean.view(b, h_c, w_c, -1).permute(0, 3, 1, 2).contiguous()
        std = std.view(b, h_c, w_c, -1).permute(0, 3, 1, 2).contiguous()
        return std * mean_variance_norm(c_feats[i]) + mean

    def losses(self, content, style):
        c_feats = self.encode(content)
        s_feats = self.encode(style)
        cs, skip = self.decoder_inputs(c_feats, s_feats, subsample=True)
        out = self.decode(cs, skip)
        stylized_feats = self.encode(out)
        loss_content = 0.0
        for i in range(1, 5):
            loss_content = loss_content + mse_loss(mean_variance_norm(stylized_feats[i]),
                                                   mean_variance_norm(c_feats[i]))
        loss_global = 0.0
        for i in range(1, 5):
            s_mean, s_std = calc_mean_std(s_feats[i])
            o_mean, o_std = calc_mean_std(stylized_feats[i])
            loss_global = loss_global + mse_loss(o_mean, s_mean) + mse_loss(o_std, s_std)
        loss_local = 0.0
        for i in range(1, 5):
            loss_local = loss_local + mse_loss(stylized_feats[i], self.local_target(c_feats, s_feats, i))
        return {"global": loss_global, "local": loss_local, "content": loss_content}, out
