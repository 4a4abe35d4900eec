"""Built-in plugin: `/name style:<choice> [starts_with] [count] [seed] [variety] [model]`.

Names for people, places, projects and fantasy characters, in English and Chinese, from a
character-level VAE conditioned on style, or (``model:gan``) a character-level GAN (see MODEL_CARD.md). One output per name (count up
to 25); reroll and variations ("more like #3": names around that name's latent). Every name
passes the content rules before it is returned (refused candidates are resampled).
"""
from __future__ import annotations

from engine import sdk
from plugins.name.data import STYLES
from plugins.name.generator import DEFAULT_VARIETY, NameGenerator

STYLE_LABELS: dict[str, tuple[str, str]] = {
    "person-en": ("English person name", "英文人名"),
    "person-zh": ("Chinese person name", "中文人名"),
    "place": ("Place (European town)", "地名（欧洲城镇）"),
    "project": ("Project / product", "项目或产品名"),
    "fantasy": ("Fantasy character", "奇幻角色名"),
}
# zh-CN fronts list these first (Discord keeps one order for every locale; see choice_order)
CHINESE_STYLES = ("person-zh",)

MORE_LIKE = sdk.Action(name="variations", label="More like", emoji="🔀", per_output=True,
                       label_localizations={"zh-CN": "更多类似"})

NAME = sdk.Command(
    name="name",
    description="Invent names for people, places, projects and characters",
    name_localizations={"zh-CN": "起名"},
    description_localizations={"zh-CN": "为人物、地点、项目和角色起名字"},
    modality="text",
    generator="name",
    max_count=25,
    actions=[sdk.REROLL, MORE_LIKE],
    options=[
        sdk.Option(name="style", type="string", required=True,
                   choices=[sdk.Choice(name=STYLE_LABELS[s][0], value=s,
                                       name_localizations={"zh-CN": STYLE_LABELS[s][1]}) for s in STYLES],
                   # a zh-CN member sees the Chinese style first (offered as autocomplete by the bot)
                   choice_order={"zh-CN": list(CHINESE_STYLES)},
                   description="What kind of name",
                   name_localizations={"zh-CN": "风格"},
                   description_localizations={"zh-CN": "哪一类名字"}),
        sdk.Option(name="starts_with", type="string", max_length=12,
                   description="The names begin with these letters",
                   name_localizations={"zh-CN": "开头"},
                   description_localizations={"zh-CN": "名字以这些字开头"}),
        sdk.count_option(25, "names", default=10),
        sdk.seed_option("names"),
        sdk.variety_option(DEFAULT_VARIETY, description="0 = most typical names; 1 = most unusual", zh="0 最常见典型，1 最新奇"),
        sdk.Option(name="model", type="string", default="vae",
                   choices=[sdk.Choice(name="VAE (best measured)", value="vae",
                                       name_localizations={"zh-CN": "VAE（实测最佳）"}),
                            sdk.Choice(name="GAN", value="gan", name_localizations={"zh-CN": "GAN"})],
                   description="Which model invents the names",
                   name_localizations={"zh-CN": "模型"},
                   description_localizations={"zh-CN": "使用哪个模型起名"}),
    ],
)

plugin = sdk.Plugin(
    name="name",
    version="0.1.0",
    description="Names in English and Chinese (character-level VAE conditioned on style, trained on Faker's lists)",
    commands=[NAME],
    generators=[NameGenerator()],
    tools=[
        sdk.Tool("data", "names", "plugins.name.data_tool", "build the names data set from Faker's lists"),
        sdk.Tool("train", "names", "plugins.name.train_tool", "train (or resume) the name VAE or GAN"),
        sdk.Tool("eval", "name", "plugins.name.eval_tool", "NLL vs n-gram, novelty, validity, FD, diversity"),
    ],
)
