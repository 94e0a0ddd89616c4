/* Links the installed libaha through find_package(aha) and calls into it: loading a recipe
 * that does not exist must fail with aha's message. */
#include <stdio.h>
#include <string.h>

#include "aha/error.h"
#include "aha/recipe.h"

int main(void) {
    AhaRecipe recipe;
    if (aha_recipe_load("/nonexistent/recipe.yaml", NULL, 0, &recipe) == 0) return 1;
    if (strstr(aha_error_message(), "cannot open the recipe") == NULL) return 1;
    printf("consumer: libaha linked, error convention reached: %s\n", aha_error_message());
    return 0;
}
