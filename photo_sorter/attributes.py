"""The 40 CelebA attribute names (official order), groups and display labels.

Every module names attributes by these exact strings, so the model card, the database columns,
the query language and the GUI all agree.
"""

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)

# Subjective; a photo organizer should not rank people by it, so the bundled model drops it.
EXCLUDED_BY_DEFAULT: tuple[str, ...] = ("Attractive",)

DEFAULT_ATTRIBUTES: tuple[str, ...] = tuple(
    a for a in CELEBA_ATTRIBUTES if a not in EXCLUDED_BY_DEFAULT
)

# The article's ten attributes for clustering.
CLUSTER_ATTRIBUTES: tuple[str, ...] = (
    "Wearing_Lipstick", "Smiling", "No_Beard", "Heavy_Makeup", "Bald", "Male", "Young",
    "Eyeglasses", "Blond_Hair", "Wearing_Hat",
)

GROUPS: dict[str, tuple[str, ...]] = {
    "Expression": ("Smiling", "Mouth_Slightly_Open", "High_Cheekbones", "Narrow_Eyes"),
    "Hair": ("Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair",
             "Receding_Hairline", "Straight_Hair", "Wavy_Hair"),
    "Facial hair": ("5_o_Clock_Shadow", "Goatee", "Mustache", "No_Beard", "Sideburns"),
    "Accessories": ("Eyeglasses", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
                    "Wearing_Necklace", "Wearing_Necktie", "Heavy_Makeup"),
    "Face": ("Arched_Eyebrows", "Bags_Under_Eyes", "Big_Lips", "Big_Nose", "Bushy_Eyebrows",
             "Chubby", "Double_Chin", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Rosy_Cheeks"),
    "Person": ("Male", "Young", "Attractive"),
    "Image": ("Blurry",),
}


def label(name: str) -> str:
    """Human label for an attribute: 'Wearing_Hat' -> 'Wearing hat', '5_o_Clock_Shadow' -> "5 o'clock shadow"."""
    if name == "5_o_Clock_Shadow":
        return "5 o'clock shadow"
    text = name.replace("_", " ")
    return text[0] + text[1:].lower()


def absent(name: str) -> str:
    """Plain words for an attribute that is absent: 'No_Beard' -> 'Beard' (never 'not No beard'),
    otherwise 'not Wearing hat'."""
    return label(name[3:]) if name.startswith("No_") else f"not {label(name)}"


def validate(names, allowed=CELEBA_ATTRIBUTES) -> list[str]:
    """Return names as a list, raising ValueError that names every unknown attribute."""
    names = list(names)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(
            f"unknown attribute name(s): {', '.join(unknown)}; known: {', '.join(allowed)}"
        )
    return names
